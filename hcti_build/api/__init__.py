"""The API layer: the hosted API's REST surface over the store (`hcti serve`), its OpenAPI document, signing and
credentials, and the same API as MCP tools."""
