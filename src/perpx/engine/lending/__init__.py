"""Collateral assets and secured loans on the venue's ledger (issue 20).

``config`` parses ``[assets.X]`` collateral settings and ``[lending]``; ``formulas`` holds every
lending formula with its rounding; ``loans`` is the loan record; ``stage`` applies the lending
commands, accrues interest per minute of venue time and runs margin calls and liquidations.
"""
