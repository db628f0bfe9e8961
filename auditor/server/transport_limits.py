"""The HTTP transport's default limits (``http_transport``), apart from it: the commands show
them as option defaults, and importing the transport (uvicorn) for that would cost every
``auditor check`` about 40 ms of start-up."""

DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
