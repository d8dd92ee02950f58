"""rdv: the observable engine behind a French appointment-booking phone assistant."""

__version__ = "0.1.0"
