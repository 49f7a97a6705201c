"""Pictures of router graphs: ``routebricks graph`` draws a router's elements and
connections with Graphviz, and labels each connection with the packets that crossed it when
the router is running.

Above ``engine`` and ``runtime`` (it builds a router to learn its ports and push/pull modes,
and reads a running router's counts through the control socket); nothing below imports it,
and ``routebricks run`` never loads it.
"""
