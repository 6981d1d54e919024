-- A portfolio's return on its capital at each stored snapshot before :end (the equity plot's series: unlike
-- the equity, it does not jump when a series joins the book and brings its capital).
SELECT time, total_return FROM equity_curve WHERE portfolio = :portfolio AND time < :end ORDER BY time
