"""The daemon: the Supervisor that owns the groups, the run of the daemon process, configuration
updates (precise and rolling), reexec handover, event listener pools, cron starts, depends_on, the
resource sampler, systemd notification and the rules that end the daemon."""
