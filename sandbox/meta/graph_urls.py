"""``/sandbox/graph/``: the Graph API stand-in (see ``sandbox/meta/graph_views.py``)."""

from django.urls import path, re_path

from sandbox.meta import graph_views

urlpatterns = [
    path("_control/faults", graph_views.faults_control, name="graph-faults"),
    re_path(
        r"^(?P<version>v[0-9]+\.[0-9]+)/(?P<endpoint>.+)$", graph_views.graph_call, name="graph"
    ),
]
