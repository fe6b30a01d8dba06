"""``sepconv ui``: a local web page over the ``sepconv interpolate`` and ``sepconv video`` commands.

* :mod:`sepconv.ui.server`: the HTTP server (the standard library's ``http.server``) and its
  routes; the page itself is ``static/`` (HTML, CSS and JavaScript, nothing fetched elsewhere).
* :mod:`sepconv.ui.jobs`: clients (one per browser tab), jobs and the one-at-a-time queue.
  Every job runs the ``sepconv`` command in a child process, so the page gets the command's
  own code paths, one-line errors, Ctrl-C (cancel) and ``--resume``.
* :mod:`sepconv.ui.child`: what the server asks of short-lived child processes (the installed
  models; previews a browser can show).

See docs/ui.md.
"""
