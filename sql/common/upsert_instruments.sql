-- Insert or update instruments from :rows (a JSON array of objects with the columns below), never deleting
-- one. first_seen keeps the earliest sighting and last_seen the latest; a listing or delisting time once
-- known is kept when a later source does not know it; updated_at moves only when something changed.
-- Returns one row per instrument inserted or changed.
WITH offered AS (
    SELECT *
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        exchange text, symbol text, type text, base text, quote text, settle text, exchange_symbol text,
        contract_size double precision, linear boolean, inverse boolean, expiry timestamptz,
        strike double precision, option_type text, tick_size double precision, lot_size double precision,
        active boolean, first_seen timestamptz, last_seen timestamptz, listed_at timestamptz,
        delisted_at timestamptz, source text, info jsonb
    )
)
INSERT INTO instruments AS i (
    exchange, symbol, type, base, quote, settle, exchange_symbol, contract_size, linear, inverse, expiry,
    strike, option_type, tick_size, lot_size, active, first_seen, last_seen, listed_at, delisted_at, source,
    info, updated_at
)
SELECT exchange, symbol, type, base, quote, settle, exchange_symbol, contract_size, linear, inverse, expiry,
       strike, option_type, tick_size, lot_size, coalesce(active, true), first_seen, last_seen, listed_at,
       delisted_at, source, coalesce(info, '{}'::jsonb), CAST(:now AS timestamptz)
FROM offered
ON CONFLICT (exchange, symbol) DO UPDATE SET
    type = excluded.type,
    base = excluded.base,
    quote = excluded.quote,
    settle = excluded.settle,
    exchange_symbol = coalesce(excluded.exchange_symbol, i.exchange_symbol),
    contract_size = excluded.contract_size,
    linear = excluded.linear,
    inverse = excluded.inverse,
    expiry = excluded.expiry,
    strike = excluded.strike,
    option_type = excluded.option_type,
    tick_size = excluded.tick_size,
    lot_size = excluded.lot_size,
    active = excluded.active,
    first_seen = least(i.first_seen, excluded.first_seen),
    last_seen = greatest(i.last_seen, excluded.last_seen),
    listed_at = coalesce(excluded.listed_at, i.listed_at),
    delisted_at = coalesce(excluded.delisted_at, i.delisted_at),
    source = coalesce(excluded.source, i.source),
    info = excluded.info,
    updated_at = excluded.updated_at
WHERE (i.type, i.base, i.quote, i.settle, i.exchange_symbol, i.contract_size, i.linear, i.inverse, i.expiry,
       i.strike, i.option_type, i.tick_size, i.lot_size, i.active, i.first_seen, i.last_seen, i.listed_at,
       i.delisted_at, i.source, i.info)
      IS DISTINCT FROM
      (excluded.type, excluded.base, excluded.quote, excluded.settle,
       coalesce(excluded.exchange_symbol, i.exchange_symbol), excluded.contract_size, excluded.linear,
       excluded.inverse, excluded.expiry, excluded.strike, excluded.option_type, excluded.tick_size,
       excluded.lot_size, excluded.active, least(i.first_seen, excluded.first_seen),
       greatest(i.last_seen, excluded.last_seen), coalesce(excluded.listed_at, i.listed_at),
       coalesce(excluded.delisted_at, i.delisted_at), coalesce(excluded.source, i.source), excluded.info)
RETURNING exchange, symbol
