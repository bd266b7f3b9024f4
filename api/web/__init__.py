"""The web page at ``/`` for people: ``pages`` (sign-in, the jobs, a job), ``actions`` (the
forms that change something), ``live`` (progress as server-sent events or JSON, voices'
samples), ``sessions`` (an API key exchanged for a server-side session; CSRF), ``forms`` (the
forms read into the API's own requests); ``templates/`` and ``static/`` beside them."""
