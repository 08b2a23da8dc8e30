"""The Workflow Service: versioned pipelines (DAGs) of Task Service tasks."""
