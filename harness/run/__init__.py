"""The run: one scenario cell through its phases, writing its folder as it goes."""
