"""Alert pages under /alerts/ (URL names `alerts:…`)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("nav-count/", views.nav_count, name="nav_count"),
    path("bulk/", views.bulk, name="bulk"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/traffic.json", views.traffic_json, name="traffic_json"),
    path("<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<int:pk>/resolve/", views.resolve, name="resolve"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/comment/", views.comment, name="comment"),
    path("<int:pk>/respond/disable/", views.respond_disable, name="respond_disable"),
    path("<int:pk>/respond/revoke/<int:secret_id>/", views.respond_revoke, name="respond_revoke"),
    path("<int:pk>/respond/rotate/", views.respond_rotate, name="respond_rotate"),
    path("<int:pk>/respond/block/", views.respond_block, name="respond_block"),
    path("<int:pk>/suppress/", views.suppress, name="suppress"),
    path("suppressions/", views.suppressions, name="suppressions"),
    path("suppressions/<int:pk>/lift/", views.suppression_lift, name="suppression_lift"),
    path("settings/", views.detection_settings, name="settings"),
    path("destinations/", views.destinations, name="destinations"),
    path("destinations/<int:pk>/", views.destination_detail, name="destination_detail"),
    path("destinations/<int:pk>/secret/", views.destination_secret, name="destination_secret"),
    path("destinations/<int:pk>/rotate/", views.destination_rotate, name="destination_rotate"),
    path("destinations/<int:pk>/delete/", views.destination_delete, name="destination_delete"),
]
