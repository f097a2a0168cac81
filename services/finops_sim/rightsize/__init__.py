"""`finops-sim rightsize`: requests from measured usage, the way KRR and the VPA derive them.

- ``strategy``: usage samples -> figures and a recommendation (pure, documented, configurable);
- ``prometheus``: the usage samples of a workload's container, from Prometheus alone;
- ``targets``: the stack's workloads (from the workloads builder) and their cost;
- ``output``: JSON, a text table, an HTML page with a chart per workload;
- ``stackfile``: the recommendations written into the stack file, comments and layout kept;
- ``command``: the command line that ties them together.

Another measurement (the local simulation's, say) feeds the same path: its samples as a
``strategy.ContainerUsage``, ``strategy.assess`` for the figures and the recommendation, and
``stackfile.write_requests`` with a ``RequestChange`` whose note cites them.
"""
