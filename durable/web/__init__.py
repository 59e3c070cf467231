"""The staff dashboard: views, filters, forms and the WebSocket consumers behind it."""
