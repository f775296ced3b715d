"""The usage dashboard's static files: ``index.html``, its ES modules and CSS, and the vendored
chart library (Apache ECharts, ``vendor/echarts-<version>/`` with its LICENSE and NOTICE;
``scripts/fetch_dashboard_assets.sh`` fetches and checks it). Served by
``services.ingress.routes.dashboard`` at ``/dashboard/``; no build step, nothing fetched at run
time.

The modules, by what they own: ``main.js`` (signing in, the views, loading, refresh),
``api.js`` (the usage API's wire shapes: the only module to change when they do), ``state.js``
(the view's state in the URL fragment; ranges and buckets), ``overview.js`` (the overview's
queries and the data model they become), ``charts.js`` (ECharts options), ``requests.js`` (the
request log table), ``format.js`` (numbers, money, times, safe DOM building).
"""
