"""Know-your-rights chatbot for immigrants in Massachusetts (Protecting Massachusetts Communities)."""
