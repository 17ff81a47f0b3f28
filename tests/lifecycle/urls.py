"""The project's URLs plus the secret-lifecycle pages at security/, as the mount will be."""

from django.urls import include, path

from dashboard.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("security/", include("clients.lifecycle_urls")), *project_urlpatterns]
