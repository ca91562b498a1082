"""Wire models: only the fields the gateway reads; everything else passes through untouched."""
