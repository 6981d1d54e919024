COPY {stage} ({columns}) FROM STDIN WITH (FORMAT binary)
