from django.conf import settings


def test_every_design_env_var_has_a_setting():
    for name in [
        "DATABASES", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "FIELD_ENCRYPTION_KEY", "PUBLIC_URL",
        "BIGCOMMERCE_CLIENT_ID", "BIGCOMMERCE_CLIENT_SECRET", "BIGCOMMERCE_APP_ID", "BIGCOMMERCE_API_URL",
        "BIGCOMMERCE_LOGIN_URL", "ORTTO_API_URL", "SYNC_INTERVAL_MINUTES", "SANDBOX",
    ]:
        assert hasattr(settings, name), name
