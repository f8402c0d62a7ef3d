"""Ray actors: thin shells over exesql_ray's pure logic."""
