"""Running routers: one as a library call (launch), its workers and supervisor, the
control socket, handler requests, device claims, ``top``."""

#: Seconds a worker may go without progress before the supervisor counts it as hung
#: (kept here, light to import: the command line shows it in --help).
DEFAULT_WATCHDOG = 2.0
