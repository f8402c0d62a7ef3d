"""`ray job submit` entrypoints: thin shells over exesql_ray."""
