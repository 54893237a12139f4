"""`tiergate demo`: the whole product, offline, against simulated providers."""
