"""Service functions of deployments (``do_*`` change and audit, ``check_*`` decide): the one way in for the API,
the pages, the admin, the command line and the stages."""
