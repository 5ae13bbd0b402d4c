"""AWS deployment: `make package` turns the Chalice app into one SAM template.

package.py runs Chalice's packager with merge.yaml, then splits the API into
one function per route group (routes.py), sizes and packages the pipeline
functions (functions.py, layers.py), gives every function its own role
(iam.py), adds the state machines (statemachines.py) and the settings
(settings.py).
"""
