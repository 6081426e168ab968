"""Tables, report JSON and plots."""
