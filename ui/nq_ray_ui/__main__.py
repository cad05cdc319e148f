from nq_ray_ui import main

main()
