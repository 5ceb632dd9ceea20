"""The Streamlit front end (thin: it calls the search API)."""
