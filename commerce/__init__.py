"""Commerce: merchants and staff, catalog, carts, checkout, stock, orders, fulfilment, API."""
