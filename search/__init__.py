"""Study embeddings, the FAISS index and the query API."""
