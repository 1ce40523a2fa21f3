class ApiError(Exception):
    """An error answer of the emulated API: BigCommerce's {"status", "title", "type", "errors"} body."""

    def __init__(self, status: int, title: str, errors: dict | None = None):
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = errors or {}

    def body(self) -> dict:
        body = {"status": self.status, "title": self.title,
                "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"}
        if self.errors:
            body["errors"] = self.errors
        return body
