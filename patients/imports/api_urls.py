app_name = "imports-api"

urlpatterns: list = []
