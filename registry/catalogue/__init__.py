"""The catalogue: title series and specialities, skill occupations, and the levels of each ladder."""
