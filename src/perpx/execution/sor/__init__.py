"""Smart order routing: split one parent across several venues at equal marginal all-in cost.

:mod:`.grid` puts every venue's book on one integer price and quantity grid, :mod:`.router` computes the
optimal split (pure, no I/O), :mod:`.executor` sends the children and re-routes what a failed venue
left, and :mod:`.ccxt_venue` reaches a venue (a perpx server or any ccxt exchange) through ccxt.
"""

from .grid import Grid, Level, VenueBook, VenueTerms
from .router import Allocation, RoutePlan, all_in_cost, route

__all__ = ["Allocation", "Grid", "Level", "RoutePlan", "VenueBook", "VenueTerms", "all_in_cost", "route"]
