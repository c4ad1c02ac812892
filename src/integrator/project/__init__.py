"""The project model (BUILD SIDE): what a service's source is and what of it is packaged.

One piece of code for `init` (what it reports), `clone` (what it copies) and `bundle` (what the
app wheel holds), so the three cannot disagree.
"""
