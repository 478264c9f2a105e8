"""A C2SP tlog-witness service, the log's client of witnesses, and a tile-following monitor."""
