"""The fleet: many daemon instances over one PostgreSQL, each site controlled by exactly one.

PostgreSQL is the shared state and the lease authority (:mod:`flexd.fleet.leases`): sites are
rows (:mod:`flexd.fleet.catalogue`), an instance claims unowned or expired sites with
``FOR UPDATE SKIP LOCKED`` and every claim increments the site's epoch, which fences its writes
and commands (:mod:`flexd.storage.fence`). Requests for a site that another instance owns reach
the owner through LISTEN/NOTIFY (:mod:`flexd.fleet.relay`).
"""
