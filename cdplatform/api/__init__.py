"""What every API endpoint shares: the error shape, pagination and the permission-aware viewset base."""
