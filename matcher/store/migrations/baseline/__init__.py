"""The tables of the baseline revision, one function each, in the order create_all makes them."""
