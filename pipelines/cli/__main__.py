"""`python -m market_warehouse.pipelines.cli`: the `market-warehouse` command without its console script."""

from market_warehouse.pipelines.cli import main

main()
