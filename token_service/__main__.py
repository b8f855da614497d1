"""`python -m token_service`: the same as the `token-service` console script."""

from token_service.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
