"""The cleaning and dedupe rules as plain functions: value in, value out."""
