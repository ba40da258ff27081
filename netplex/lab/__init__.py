"""The Netplex lab: a server, hosts as network namespaces with real agents, VMs, a ping matrix.

:mod:`netplex.lab.lab` builds and removes it (``netplex lab up|down``),
:mod:`netplex.lab.matrix` runs and renders the ping matrix, and
:mod:`netplex.lab.procs` starts daemons and stops only the ones it started.
"""
