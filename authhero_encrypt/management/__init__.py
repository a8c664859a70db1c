"""Management commands of authhero_encrypt, and the options they share."""
