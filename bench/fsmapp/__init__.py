"""A django-fsm-2 model, the peer that ``make bench`` compares django-steps with."""
