"""FLAM data and loss core (issue 26, arXiv 2505.05335): seeded synthetic sound events, a mixer with
own-loudness frame labels, template captions, a JAX log-mel front end and the FLAM losses."""
