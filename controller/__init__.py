"""The controller: the `exesql-ray` command, the pipeline that chains the stages, and one Ray
runner per stage (translate, sample, evaluate, train). Each runner takes its stage's pure plan
from the library (`exesql_ray/`), runs the work on the actors (`actors/`) or on Ray Train, and
returns the library's summary of what is on disk. The CLI, the pipeline and `jobs/*.py` call
the same runners; the library imports neither this package nor `actors/`.
"""
