"""Historical migration: the test run (`migrate plan`) and the cutover (`migrate run`)."""
