"""The service's decision log and its archive read back into scenario days (``collect
--service-db``): the way back from serving to training."""
