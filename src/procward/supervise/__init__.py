"""``procward supervise``: a drop-in for meetbill/daemontools ``supervise`` (one small supervisor per
service, driven through the files of its status directory)."""
