"""The media types the API speaks and stores, named once."""

#: One-line answers, listings, and values written as text (forms, bulk writes).
TEXT = "text/plain; charset=utf-8"
#: A bulk write of ``key<TAB>value`` lines.
TSV = "text/tab-separated-values"
JSON = "application/json"
#: A value written without a Content-Type.
OCTET_STREAM = "application/octet-stream"
