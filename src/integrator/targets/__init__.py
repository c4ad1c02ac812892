"""Where the operator's host verbs act (operator side): this machine, a sandbox host, or a host over ssh.

`transport.py` (the targets and the host tool), `remote.py` (the stager plan, pure builders) and
`commands.py` (each verb: run here through host/verbs.py, or on the host through the host tool).
Imports host/; host/ never imports this package.
"""
